"""pycnn.losses against Keras (tf.keras 2.21: the numbers below were computed with it, see each
block), against float64 NumPy references of every kernel, and against central finite
differences of those references."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from pycnn import _C, losses

from binding_checks import assert_every_array_checked

# ---- Keras' numbers ------------------------------------------------------------------------------
# DATA: inputs (float32). KERAS[case]: tf_keras.losses.<Class>(**kw) on DATA: "none" (per-sample),
# "mean", "mean_sw" (sample_weight=DATA["sw"]), "sum_sw" (reduction="sum"), "name", and "grad":
# TensorFlow's gradient of the mean w.r.t. y_pred (tf.GradientTape).
DATA = {
    'probs_raw': [[0.6438406705856323, 0.9023531079292297, 0.7869014143943787], [0.2639468312263489, 0.33515796065330505, 0.8798757791519165], [0.05500204116106033, 0.8301669955253601, 0.8072159290313721], [0.49453821778297424, 0.33788082003593445, 0.31450432538986206]],
    'probs': [[0.27595987915992737, 0.38676220178604126, 0.3372778594493866], [0.17846538126468658, 0.22661417722702026, 0.5949204564094543], [0.03249972313642502, 0.4905308187007904, 0.476969450712204], [0.43118682503700256, 0.2945975661277771, 0.2742156684398651]],
    'logits': [[0.210828498005867, -1.8609360456466675, -0.0585036464035511], [1.39060640335083, -2.688429117202759, -0.9152315258979797], [-3.802445411682129, -2.579075574874878, -3.6834700107574463], [-0.47018226981163025, -2.534893035888672, 0.5425286889076233]],
    'onehot': [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    'labels': [0, 2, 1, 2],
    'bin_true': [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 1.0]],
    'soft_true': [[0.4968734383583069, 0.24751491844654083, 0.01179402507841587], [0.19240213930606842, 0.6920320987701416, 0.20060671865940094], [0.36953631043434143, 0.0037342419382184744, 0.8300477266311646], [0.1544610857963562, 0.26759931445121765, 0.8803321719169617]],
    'reg_pred': [[0.09567265957593918, -1.8375837802886963, 0.114210344851017], [2.0382351875305176, -2.3207170963287354, 1.2890740633010864], [0.17903104424476624, -0.9622055888175964, 3.000624895095825], [1.1433895826339722, -1.7989333868026733, 0.11177434027194977]],
    'reg_true': [[0.8650344014167786, -0.28317317366600037, 1.0243654251098633], [-0.09977597743272781, 1.0008713006973267, 2.1577839851379395], [-1.0134934186935425, 0.30470791459083557, -0.6949613690376282], [0.19090262055397034, -1.7807917594909668, -0.8689523935317993]],
    'pos_pred': [[1.2672450542449951, 0.3804418742656708, 2.9067013263702393], [0.7235116958618164, 2.048119068145752, 0.9712182283401489], [2.6348233222961426, 2.0204226970672607, 0.4816858768463135], [2.550715446472168, 2.8403496742248535, 2.7213587760925293]],
    'pos_true': [[1.7091574668884277, 0.4363798499107361, 0.5773904919624329], [2.783717155456543, 1.6569794416427612, 0.5416575074195862], [2.6521706581115723, 1.9247151613235474, 1.709082841873169], [1.1288634538650513, 1.232865810394287, 0.718467652797699]],
    'sw': [0.5, 2.0, 0.0, 1.5],
}
KERAS = {
    'bce': {'none': [0.4077700078487396, 1.3705124855041504, 1.6263633966445923, 0.8280134201049805], 'mean': 1.0581648349761963, 'mean_sw': 1.0467325448989868, 'sum_sw': 4.186930179595947, 'name': 'binary_crossentropy', 'grad': [[0.11509489268064499, 0.13589070737361908, 0.12574398517608643], [-0.4669437110424042, -0.36773204803466797, 0.20572088658809662], [-2.5641164779663086, -0.16988396644592285, -0.17471417784690857], [-0.19326499104499817, 0.11813585460186005, -0.303896963596344]]},
    'bce_soft': {'none': [0.6082153916358948, 0.8077908158302307, 0.8954054713249207, 0.7889987826347351], 'mean': 0.7751026153564453, 'mean_sw': 0.7757968902587891, 'sum_sw': 3.1031875610351562, 'name': 'binary_crossentropy', 'grad': [[-0.09213663637638092, 0.04892520233988762, 0.12134694308042526], [-0.007921330630779266, -0.2212984561920166, 0.13635197281837463], [-0.893230676651001, 0.1623237133026123, -0.11794297397136688], [0.09402278065681458, 0.010826513171195984, -0.2537901997566223]]},
    'bce_logits': {'none': [0.5376622676849365, 1.1044210195541382, 3.3949973583221436, 0.4967130124568939], 'mean': 1.3834484815597534, 'mean_sw': 0.8056856393814087, 'sum_sw': 3.2227425575256348, 'name': 'binary_crossentropy', 'grad': [[0.046042729169130325, 0.01121616642922163, 0.04044819250702858], [-0.016609249636530876, -0.0780283734202385, 0.02382754534482956], [-0.08151425421237946, -0.07745856046676636, -0.08129005879163742], [-0.051285576075315475, 0.0061206636019051075, -0.030633296817541122]]},
    'bce_ls': {'none': [0.47780272364616394, 1.2658908367156982, 1.5089117288589478, 0.8154404759407043], 'mean': 1.0170115232467651, 'mean_sw': 0.9984609484672546, 'sum_sw': 3.9938437938690186, 'name': 'binary_crossentropy', 'grad': [[0.07338778674602509, 0.1007552444934845, 0.0884619727730751], [-0.41010573506355286, -0.32018372416496277, 0.17114132642745972], [-2.2990915775299072, -0.13653868436813354, -0.1413099765777588], [-0.15928810834884644, 0.07803509384393692, -0.2620254456996918]]},
    'focal': {'none': [0.04817913845181465, 0.7902955412864685, 1.198270320892334, 0.3280026614665985], 'mean': 0.5911869406700134, 'mean_sw': 0.5241711735725403, 'sum_sw': 2.096684694290161, 'name': 'binary_focal_crossentropy', 'grad': [[0.02361653745174408, 0.051848478615283966, 0.03743016719818115], [-0.5511159300804138, -0.41129928827285767, 0.16241297125816345], [-2.9526853561401367, -0.10457456111907959, -0.11232844740152359], [-0.1422794908285141, 0.027387846261262894, -0.3165897727012634]]},
    'focal_logits_bal': {'none': [0.1311386674642563, 0.26353633403778076, 0.9649447798728943, 0.0567043274641037], 'mean': 0.35408103466033936, 'mean_sw': 0.1694246232509613, 'sum_sw': 0.6776984930038452, 'name': 'binary_focal_crossentropy', 'grad': [[0.02616700530052185, 0.0009281969396397471, 0.01969023421406746], [-0.0010372501565143466, -0.027166403830051422, 0.005767371505498886], [-0.026686694473028183, -0.027107350528240204, -0.026780657470226288], [-0.014081820845603943, 0.00020839189528487623, -0.004470210988074541]]},
    'focal_ls': {'none': [0.058536261320114136, 0.12730805575847626, 0.08574789762496948, 0.14051736891269684], 'mean': 0.10302738845348358, 'mean_sw': 0.12366507202386856, 'sum_sw': 0.49466028809547424, 'name': 'binary_focal_crossentropy', 'grad': [[-0.011165501549839973, 0.01766611449420452, 0.017358943819999695], [0.006862035021185875, -0.0776519626379013, 0.054452523589134216], [-0.04322624206542969, 0.05380953848361969, -0.0427715964615345], [0.027903761714696884, 0.010918360203504562, -0.15033462643623352]]},
    'cce': {'none': [1.2874997854232788, 0.5193275809288025, 0.7122671604156494, 1.2938405275344849], 'mean': 0.9532337188720703, 'mean_sw': 0.9057914614677429, 'sum_sw': 3.6231658458709717, 'name': 'categorical_crossentropy', 'grad': [[-0.6559287905693054, 0.25, 0.25], [0.25, 0.25, -0.17022424936294556], [0.25, -0.25965195894241333, 0.25], [0.2499999701976776, 0.2499999701976776, -0.6616911888122559]]},
    'cce_unnormalised': {'none': [1.2874997854232788, 0.5193275809288025, 0.7122671604156494, 1.2938404083251953], 'mean': 0.9532337188720703, 'mean_sw': 0.9057914018630981, 'sum_sw': 3.6231656074523926, 'name': 'categorical_crossentropy', 'grad': [[-0.2811410427093506, 0.10715378820896149, 0.10715378820896149], [0.16903534531593323, 0.16903534531593323, -0.11509567499160767], [0.14772051572799683, -0.15342369675636292, 0.14772051572799683], [0.2179744690656662, 0.2179744690656662, -0.5769270658493042]]},
    'cce_logits': {'none': [0.6364989280700684, 2.4161252975463867, 0.4859067499637604, 0.34310081601142883], 'mean': 0.9704079627990723, 'mean_sw': 1.416287899017334, 'sum_sw': 5.665151596069336, 'name': 'categorical_crossentropy', 'grad': [[-0.11771456897258759, 0.016663113608956337, 0.1010514497756958], [0.2238941490650177, 0.0037891343235969543, -0.22768329083919525], [0.04524917155504227, -0.09621520340442657, 0.0509660504758358], [0.06443449854850769, 0.008173837326467037, -0.0726083368062973]]},
    'cce_ls': {'none': [1.269559621810913, 0.5916346311569214, 0.8036769032478333, 1.2763631343841553], 'mean': 0.9853085875511169, 'mean_sw': 0.9331484436988831, 'sum_sw': 3.7325937747955322, 'name': 'categorical_crossentropy', 'grad': [[-0.595533549785614, 0.2284536063671112, 0.2252923846244812], [0.20330560207366943, 0.213226780295372, -0.14220929145812988], [-0.00641244649887085, -0.22567516565322876, 0.23252858221530914], [0.23067347705364227, 0.22171281278133392, -0.6009117364883423]]},
    'cce_logits_ls': {'none': [1.1231541633605957, 3.0551133155822754, 1.7459845542907715, 1.5106980800628662], 'mean': 1.8587374687194824, 'mean_sw': 2.2344627380371094, 'sum_sw': 8.937850952148438, 'name': 'categorical_crossentropy', 'grad': [[0.02033258229494095, -0.05165199935436249, 0.07398749887943268], [0.16522377729415894, -0.14231649041175842, -0.037789467722177505], [-0.04441968351602554, 0.12813130021095276, -0.11929230391979218], [0.012403808534145355, -0.0636560395359993, -0.0016664713621139526]]},
    'scce': {'none': [1.2874996662139893, 0.5193275809288025, 0.7122671604156494, 1.2938404083251953], 'mean': 0.9532337188720703, 'mean_sw': 0.9057914018630981, 'sum_sw': 3.6231656074523926, 'name': 'sparse_categorical_crossentropy', 'grad': [[-0.6559287905693054, 0.2500000298023224, 0.25], [0.2499999850988388, 0.25, -0.17022424936294556], [0.25, -0.25965195894241333, 0.2499999850988388], [0.2499999701976776, 0.2499999701976776, -0.6616911888122559]]},
    'scce_unnormalised': {'none': [1.2874999046325684, 0.5193275809288025, 0.7122671604156494, 1.2938405275344849], 'mean': 0.9532338380813599, 'mean_sw': 0.9057915210723877, 'sum_sw': 3.623166084289551, 'name': 'sparse_categorical_crossentropy', 'grad': [[-0.281141072511673, 0.10715379565954208, 0.10715379565954208], [0.16903534531593323, 0.16903533041477203, -0.11509566754102707], [0.14772053062915802, -0.15342369675636292, 0.1477205455303192], [0.2179744690656662, 0.217974454164505, -0.5769271850585938]]},
    'scce_logits': {'none': [0.6364989280700684, 2.4161252975463867, 0.4859067499637604, 0.34310081601142883], 'mean': 0.9704079627990723, 'mean_sw': 1.416287899017334, 'sum_sw': 5.665151596069336, 'name': 'sparse_categorical_crossentropy', 'grad': [[-0.11771456897258759, 0.016663113608956337, 0.1010514497756958], [0.2238941490650177, 0.0037891343235969543, -0.22768329083919525], [0.04524917155504227, -0.09621520340442657, 0.0509660504758358], [0.06443449854850769, 0.008173837326467037, -0.0726083368062973]]},
    'mse': {'none': [1.278830647468567, 5.452899932861328, 5.561513900756836, 0.6231284737586975], 'mean': 3.229093313217163, 'mean_sw': 3.1199769973754883, 'sum_sw': 12.479907989501953, 'name': 'mean_squared_error', 'grad': [[-0.12822696566581726, -0.25906842947006226, -0.15169250965118408], [0.35633522272109985, -0.5535981059074402, -0.14478498697280884], [0.19875407218933105, -0.21115225553512573, 0.6159310340881348], [0.1587478369474411, -0.003023604629561305, 0.16345445811748505]]},
    'mae': {'none': [1.077975869178772, 2.109436511993408, 2.0516746044158936, 0.6504517793655396], 'mean': 1.4723846912384033, 'mean_sw': 1.433384656906128, 'sum_sw': 5.733538627624512, 'name': 'mean_absolute_error', 'grad': [[-0.0833333358168602, -0.0833333358168602, -0.0833333358168602], [0.0833333358168602, -0.0833333358168602, -0.0833333358168602], [0.0833333358168602, -0.0833333358168602, 0.0833333358168602], [0.0833333358168602, -0.0833333358168602, 0.0833333358168602]]},
    'mape': {'none': [242.23880004882812, 838.3135986328125, 355.07098388671875, 204.2735137939453], 'mean': 409.9742126464844, 'mean_sw': 526.0391845703125, 'sum_sw': 2104.15673828125, 'name': 'mean_absolute_percentage_error', 'grad': [[-9.633527755737305, -29.42839813232422, -8.135117530822754], [83.52043151855469, -8.326078414916992, -3.8619866371154785], [8.22238540649414, -27.348594665527344, 11.991073608398438], [43.65227127075195, -4.679566383361816, 9.590091705322266]]},
    'msle': {'none': [0.35716378688812256, 0.386434406042099, 0.8606827855110168, 0.27831780910491943], 'mean': 0.47064968943595886, 'mean_sw': 0.3422318696975708, 'sum_sw': 1.3689274787902832, 'name': 'mean_squared_logarithmic_error', 'grad': [[-0.13770374655723572, 0.0, -0.05199884623289108], [-0.012037145905196667, 0.0, 0.028780866414308548], [-0.15982457995414734, 0.0, 0.016240812838077545], [0.0005287849926389754, 0.0, -0.06528240442276001]]},
    'huber': {'none': [0.5881868004798889, 1.6123093366622925, 1.551674723625183, 0.31156423687934875], 'mean': 1.015933871269226, 'mean_sw': 0.996514618396759, 'sum_sw': 3.986058473587036, 'name': 'huber_loss', 'grad': [[-0.06411348283290863, -0.0833333358168602, -0.07584625482559204], [0.0833333358168602, -0.0833333358168602, -0.07239249348640442], [0.0833333358168602, -0.0833333358168602, 0.0833333358168602], [0.07937391847372055, -0.0015118023147806525, 0.08172722905874252]]},
    'huber_delta': {'none': [0.35119032859802246, 0.7637746334075928, 0.7406699061393738, 0.20448334515094757], 'mean': 0.5150295495986938, 'mean_sw': 0.5024673938751221, 'sum_sw': 2.0098695755004883, 'name': 'huber_loss', 'grad': [[-0.03333333507180214, -0.03333333507180214, -0.03333333507180214], [0.03333333507180214, -0.03333333507180214, -0.03333333507180214], [0.03333333507180214, -0.03333333507180214, 0.03333333507180214], [0.03333333507180214, -0.0015118023147806525, 0.03333333507180214]]},
    'logcosh': {'none': [0.5142509341239929, 1.4753562211990356, 1.4135502576828003, 0.2724755108356476], 'mean': 0.9189081788063049, 'mean_sw': 0.9041377902030945, 'sum_sw': 3.616551160812378, 'name': 'log_cosh', 'grad': [[-0.05387984961271286, -0.07620919495820999, -0.06010056287050247], [0.08104877918958664, -0.08311647921800613, -0.058393172919750214], [0.06928001344203949, -0.07107991725206375, 0.08323062211275101], [0.06174224242568016, -0.0015116333961486816, 0.06278169900178909]]},
    'kld': {'none': [0.14217661321163177, 0.5689646601676941, 1.3400057554244995, 0.8425146341323853], 'mean': 0.7234153747558594, 'mean_sw': 0.6181974411010742, 'sum_sw': 2.472789764404297, 'name': 'kl_divergence', 'grad': [[-0.45013195276260376, -0.15999165177345276, -0.008742068894207478], [-0.269523024559021, -0.7634475231170654, -0.08429981023073196], [-2.842611312866211, -0.0019031637348234653, -0.43506336212158203], [-0.0895557776093483, -0.22708886861801147, -0.80259108543396]]},
    'poisson': {'none': [1.318407416343689, 1.1572202444076538, 0.8207408785820007, 1.6830276250839233], 'mean': 1.2448490858078003, 'mean_sw': 1.3745464086532593, 'sum_sw': 5.498185634613037, 'name': 'poisson', 'grad': [[-0.029059909284114838, -0.01225282996892929, 0.06677990406751633], [-0.23729228973388672, 0.015914589166641235, 0.03685755655169487], [-0.0005486607551574707, 0.003947503864765167, -0.21234390139579773], [0.04645271971821785, 0.04716214910149574, 0.061332449316978455]]},
    'hinge': {'none': [0.7366276383399963, 1.8699302673339844, 0.9277248382568359, 0.2960752248764038], 'mean': 0.9575895071029663, 'mean_sw': 1.1380717754364014, 'sum_sw': 4.5522871017456055, 'name': 'hinge', 'grad': [[0.0833333358168602, 0.0, 0.0833333358168602], [-0.0, -0.0833333358168602, 0.0833333358168602], [-0.0833333358168602, -0.0833333358168602, -0.0], [-0.0, 0.0, -0.0833333358168602]]},
    'hinge_pm': {'none': [0.7599640488624573, 1.5087019205093384, 1.8533188104629517, 0.6262834668159485], 'mean': 1.1870671510696411, 'mean_sw': 1.084202766418457, 'sum_sw': 4.336811065673828, 'name': 'hinge', 'grad': [[-0.07208620011806488, 0.02359776571393013, -0.08536379039287567], [0.008314665406942368, -0.08340594172477722, -0.0], [0.08445778489112854, -0.025392327457666397, 0.05791344866156578], [-0.015908552333712578, 0.0, 0.07241269946098328]]},
    'squared_hinge': {'none': [0.8139877319335938, 5.422340393066406, 1.5080803632736206, 0.2629816234111786], 'mean': 2.001847505569458, 'mean_sw': 2.911536693572998, 'sum_sw': 11.646146774291992, 'name': 'squared_hinge', 'grad': [[0.1826121062040329, 0.0, 0.18570172786712646], [-0.0, -0.5534528493881226, 0.3815123438835144], [-0.13682816922664642, -0.3270342946052551, -0.0], [-0.0, 0.0, -0.1480376124382019]]},
    'categorical_hinge': {'none': [1.0185376405715942, 1.7491611242294312, 4.962830543518066, 2.0316152572631836], 'mean': 2.4405360221862793, 'mean_sw': 1.7637535333633423, 'sum_sw': 7.055014133453369, 'name': 'categorical_hinge', 'grad': [[-0.25, 0.0, 0.25], [0.25, 0.0, -0.25], [0.0, -0.25, 0.25], [0.25, 0.0, -0.25]]},
    'cosine': {'none': [-0.28503838181495667, -0.03205794095993042, 0.6406224966049194, -0.7824557423591614], 'mean': -0.11473239213228226, 'mean_sw': -0.3450796902179718, 'sum_sw': -1.3803187608718872, 'name': 'cosine_similarity', 'grad': [[-0.08359526842832565, -0.01050378568470478, -0.09897351264953613], [0.004588799085468054, -0.03306322544813156, -0.06677927076816559], [0.06052769720554352, -0.0035934867337346077, -0.004763677716255188], [0.03785986825823784, 0.027538344264030457, 0.0559256449341774]]},
}

# MODEL_*: tf_keras Sequential([Dense(units, activation)]) with these weights, compiled with a
# loss, model.evaluate(x, y, batch_size=6): (loss, the from_logits warnings it gave).
MODEL_DATA = {
    'x': [[0.0341927669942379, 1.3597475290298462, 1.224721074104309, -0.5103070735931396], [-0.2979695200920105, -0.5273842215538025, 0.5697263479232788, -0.056064438074827194], [0.7468855977058411, -1.8473248481750488, 1.5665488243103027, -0.0964321568608284], [0.6803784370422363, -0.13656634092330933, -0.3790985643863678, 0.46311014890670776], [0.8245135545730591, -0.2025298774242401, -0.15278618037700653, 0.6856986284255981], [-0.8703406453132629, -1.5143835544586182, 0.39498186111450195, -0.6705658435821533]],
    'W': [[-1.9203405380249023, -0.8140536546707153, -0.4675975441932678], [-1.1932024955749512, -1.4924638271331787, 0.03663782775402069], [0.8972492814064026, -0.23313207924365997, -0.7435960173606873], [0.3849938213825226, 0.717235803604126, -0.3000105917453766]],
    'b': [0.10000000149011612, -0.20000000298023224, 0.30000001192092896],
    'Wbig': [[-76.8136215209961, -32.5621452331543, -18.703901290893555], [-47.72809982299805, -59.69855499267578, 1.4655131101608276], [35.88997268676758, -9.32528305053711, -29.74384117126465], [15.399752616882324, 28.68943214416504, -12.000423431396484]],
    'y_sparse': [0, 1, 2, 2, 1, 0],
    'y_bin': [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]],
    'y_bin1': [[1.0], [1.0], [1.0], [0.0], [1.0], [0.0]],
    'W1': [[15.834126472473145], [-22.163700103759766], [41.56941223144531], [24.657730102539062]],
    'b1': [0.5],
}
MODEL_KERAS = {
    'softmax_cce_from_logits': (1.3446049690246582, ['"`categorical_crossentropy` received `from_logits=True`, but the `output` argument was produced by a Softmax activation and thus does not represent logits. Was this intended?']),
    'softmax_scce_from_logits': (1.3446049690246582, ['"`sparse_categorical_crossentropy` received `from_logits=True`, but the `output` argument was produced by a Softmax activation and thus does not represent logits. Was this intended?']),
    'sigmoid_cce': (1.3446049690246582, []),
    'sigmoid_scce': (1.3446049690246582, []),
    'saturated_softmax_scce': (32.23344802856445, []),
    'saturated_softmax_cce': (32.23344802856445, []),
    'saturated_sigmoid_bce': (5.021381855010986, []),
    'softmax_bce': (1.1541228294372559, []),
    'sigmoid_bce_from_logits': (1.1541228294372559, ['"`binary_crossentropy` received `from_logits=True`, but the `output` argument was produced by a Sigmoid activation and thus does not represent logits. Was this intended?']),
    'sigmoid_focal': (5.021208763122559, []),
    'linear_cce_from_logits': (1.3446049690246582, []),
    'saturated_linear_probs_mse': (0.3333176076412201, []),
}

CASES = {
    "bce": (losses.BinaryCrossentropy, {}, "bin_true", "probs"),
    "bce_soft": (losses.BinaryCrossentropy, {}, "soft_true", "probs"),
    "bce_logits": (losses.BinaryCrossentropy, {"from_logits": True}, "bin_true", "logits"),
    "bce_ls": (losses.BinaryCrossentropy, {"label_smoothing": 0.2}, "bin_true", "probs"),
    "focal": (losses.BinaryFocalCrossentropy, {}, "bin_true", "probs"),
    "focal_logits_bal": (losses.BinaryFocalCrossentropy,
                         {"from_logits": True, "apply_class_balancing": True, "alpha": 0.3,
                          "gamma": 1.5}, "bin_true", "logits"),
    "focal_ls": (losses.BinaryFocalCrossentropy, {"label_smoothing": 0.1, "gamma": 3.0},
                 "soft_true", "probs"),
    "cce": (losses.CategoricalCrossentropy, {}, "onehot", "probs"),
    "cce_unnormalised": (losses.CategoricalCrossentropy, {}, "onehot", "probs_raw"),
    "cce_logits": (losses.CategoricalCrossentropy, {"from_logits": True}, "onehot", "logits"),
    "cce_ls": (losses.CategoricalCrossentropy, {"label_smoothing": 0.1}, "onehot", "probs"),
    "cce_logits_ls": (losses.CategoricalCrossentropy, {"from_logits": True,
                                                       "label_smoothing": 0.3},
                      "soft_true", "logits"),
    "scce": (losses.SparseCategoricalCrossentropy, {}, "labels", "probs"),
    "scce_unnormalised": (losses.SparseCategoricalCrossentropy, {}, "labels", "probs_raw"),
    "scce_logits": (losses.SparseCategoricalCrossentropy, {"from_logits": True}, "labels",
                    "logits"),
    "mse": (losses.MeanSquaredError, {}, "reg_true", "reg_pred"),
    "mae": (losses.MeanAbsoluteError, {}, "reg_true", "reg_pred"),
    "mape": (losses.MeanAbsolutePercentageError, {}, "reg_true", "reg_pred"),
    "msle": (losses.MeanSquaredLogarithmicError, {}, "pos_true", "reg_pred"),
    "huber": (losses.Huber, {}, "reg_true", "reg_pred"),
    "huber_delta": (losses.Huber, {"delta": 0.4}, "reg_true", "reg_pred"),
    "logcosh": (losses.LogCosh, {}, "reg_true", "reg_pred"),
    "kld": (losses.KLDivergence, {}, "soft_true", "probs"),
    "poisson": (losses.Poisson, {}, "pos_true", "pos_pred"),
    "hinge": (losses.Hinge, {}, "bin_true", "reg_pred"),
    "hinge_pm": (losses.Hinge, {}, "reg_true", "reg_pred"),
    "squared_hinge": (losses.SquaredHinge, {}, "bin_true", "reg_pred"),
    "categorical_hinge": (losses.CategoricalHinge, {}, "onehot", "reg_pred"),
    "cosine": (losses.CosineSimilarity, {}, "reg_true", "reg_pred"),
}


def _case(name):
    cls, kw, t, p = CASES[name]
    y_true = np.array(DATA[t], np.int64 if t == "labels" else np.float32)
    return cls, kw, y_true, np.array(DATA[p], np.float32)


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_reductions_match_keras(name):
    cls, kw, y_true, y_pred = _case(name)
    want = KERAS[name]
    sw = np.array(DATA["sw"], np.float32)
    assert cls(**kw).name == want["name"]
    np.testing.assert_allclose(cls(reduction="none", **kw)(y_true, y_pred), want["none"],
                               rtol=2e-6, atol=2e-6)
    assert cls(**kw)(y_true, y_pred) == pytest.approx(want["mean"], rel=2e-6, abs=2e-6)
    assert cls(**kw)(y_true, y_pred, sample_weight=sw) == pytest.approx(want["mean_sw"],
                                                                        rel=2e-6, abs=2e-6)
    assert cls(reduction="sum", **kw)(y_true, y_pred, sample_weight=sw) == pytest.approx(
        want["sum_sw"], rel=2e-6, abs=2e-6)
    # "auto" is "sum_over_batch_size"
    assert cls(reduction="auto", **kw)(y_true, y_pred) == pytest.approx(want["mean"], rel=2e-6,
                                                                         abs=2e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_tensorflow(name):
    cls, kw, y_true, y_pred = _case(name)
    loss = cls(**kw)
    y = loss.prepare_targets(y_true, (None, 3), "test")
    value, grad = loss.compute(y_pred, y, loss.from_logits)
    assert value == pytest.approx(KERAS[name]["mean"], rel=2e-6, abs=2e-6)
    assert grad.shape == y_pred.shape and grad.dtype == np.float32
    np.testing.assert_allclose(grad, KERAS[name]["grad"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["bce", "cce_logits", "scce", "mse", "focal_logits_bal",
                                  "cosine"])
def test_sample_weight_gradient_is_the_weighted_rows(name):
    cls, kw, y_true, y_pred = _case(name)
    loss = cls(**kw)
    sw = np.array(DATA["sw"], np.float32)
    _, g = loss.compute(y_pred, y_true, loss.from_logits)
    _, gw = loss.compute(y_pred, y_true, loss.from_logits, sample_weight=sw)
    np.testing.assert_allclose(gw, g * sw[:, None], rtol=1e-6, atol=1e-9)
    # mean_with_sample_weight (Keras 3) divides by the weights' sum instead of the batch size
    v = cls(reduction="mean_with_sample_weight", **kw)(y_true, y_pred, sample_weight=sw)
    assert v == pytest.approx(KERAS[name]["sum_sw"] / sw.sum(), rel=2e-6)


def test_module_functions_return_per_sample_values_as_keras():
    d = {k: np.array(v) for k, v in DATA.items()}
    pairs = [
        (losses.binary_crossentropy(d["bin_true"], d["probs"]), "bce"),
        (losses.binary_crossentropy(d["bin_true"], d["logits"], from_logits=True), "bce_logits"),
        (losses.binary_crossentropy(d["bin_true"], d["probs"], label_smoothing=0.2), "bce_ls"),
        (losses.binary_focal_crossentropy(d["bin_true"], d["probs"]), "focal"),
        (losses.categorical_crossentropy(d["onehot"], d["probs_raw"]), "cce_unnormalised"),
        (losses.categorical_crossentropy(d["onehot"], d["logits"], from_logits=True),
         "cce_logits"),
        (losses.sparse_categorical_crossentropy(d["labels"], d["probs_raw"]),
         "scce_unnormalised"),
        (losses.sparse_categorical_crossentropy(d["labels"], d["logits"], from_logits=True),
         "scce_logits"),
        (losses.mse(d["reg_true"], d["reg_pred"]), "mse"),
        (losses.MAE(d["reg_true"], d["reg_pred"]), "mae"),
        (losses.mape(d["reg_true"], d["reg_pred"]), "mape"),
        (losses.msle(d["pos_true"], d["reg_pred"]), "msle"),
        (losses.huber(d["reg_true"], d["reg_pred"], delta=0.4), "huber_delta"),
        (losses.logcosh(d["reg_true"], d["reg_pred"]), "logcosh"),
        (losses.kld(d["soft_true"], d["probs"]), "kld"),
        (losses.poisson(d["pos_true"], d["pos_pred"]), "poisson"),
        (losses.hinge(d["bin_true"], d["reg_pred"]), "hinge"),
        (losses.squared_hinge(d["bin_true"], d["reg_pred"]), "squared_hinge"),
        (losses.categorical_hinge(d["onehot"], d["reg_pred"]), "categorical_hinge"),
        (losses.cosine_similarity(d["reg_true"], d["reg_pred"]), "cosine"),
    ]
    for got, name in pairs:
        assert got.dtype == np.float32 and got.shape == (4,), name
        np.testing.assert_allclose(got, KERAS[name]["none"], rtol=2e-6, atol=2e-6,
                                   err_msg=name)


# ---- the four differences from Keras that pycnn used to have --------------------------------

def _pre_activation(w_key="W", b_key="b"):
    x = np.array(MODEL_DATA["x"], np.float32)
    return (x @ np.array(MODEL_DATA[w_key], np.float32) +
            np.array(MODEL_DATA[b_key], np.float32)).astype(np.float32)


def _targets(loss, key):
    return loss.prepare_targets(np.array(MODEL_DATA[key]), (None, 3), "fit(y)")


@pytest.mark.parametrize("cls,y_key", [(losses.CategoricalCrossentropy, "y_sparse"),
                                       (losses.SparseCategoricalCrossentropy, "y_sparse")])
def test_softmax_output_with_from_logits_warns_and_uses_the_logits(cls, y_key):
    loss = cls(from_logits=True)
    with pytest.warns(UserWarning, match="received `from_logits=True`, but the `output` "
                      "argument was produced by a Softmax activation"):
        assert loss.output_logits("softmax") is True
    y = np.array(MODEL_DATA[y_key])
    if cls is losses.CategoricalCrossentropy:
        y = np.eye(3, dtype=np.float32)[y]
    value, _ = loss.compute(_pre_activation(), loss.prepare_targets(y, (None, 3), "fit(y)"),
                            True)
    want, warned = MODEL_KERAS[f"softmax_{'scce' if 'Sparse' in cls.__name__ else 'cce'}"
                               "_from_logits"]
    assert warned and value == pytest.approx(want, rel=1e-6)   # no double softmax


@pytest.mark.parametrize("cls,case", [(losses.CategoricalCrossentropy, "sigmoid_cce"),
                                      (losses.SparseCategoricalCrossentropy, "sigmoid_scce")])
def test_sigmoid_output_with_categorical_crossentropy_uses_pre_sigmoid_logits(cls, case):
    loss = cls()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert loss.output_logits("sigmoid") is True
    y = np.array(MODEL_DATA["y_sparse"])
    if cls is losses.CategoricalCrossentropy:
        y = np.eye(3, dtype=np.float32)[y]
    value, _ = loss.compute(_pre_activation(), loss.prepare_targets(y, (None, 3), "fit(y)"),
                            True)
    assert value == pytest.approx(MODEL_KERAS[case][0], rel=1e-6)


def test_unnormalised_probabilities_are_divided_by_the_row_sum():
    p = np.array(DATA["probs_raw"], np.float32)        # rows sum to 1.7 - 2.3
    scce, cce = losses.SparseCategoricalCrossentropy(), losses.CategoricalCrossentropy()
    assert scce(np.array(DATA["labels"]), p) == pytest.approx(KERAS["scce_unnormalised"]["mean"],
                                                              rel=1e-6)
    assert cce(np.array(DATA["onehot"]), p) == pytest.approx(KERAS["cce_unnormalised"]["mean"],
                                                             rel=1e-6)
    # the same as on the renormalised rows
    q = p / p.sum(-1, keepdims=True)
    assert scce(np.array(DATA["labels"]), q) == pytest.approx(scce(np.array(DATA["labels"]), p),
                                                              rel=1e-6)


@pytest.mark.parametrize("cls,case", [(losses.SparseCategoricalCrossentropy,
                                       "saturated_softmax_scce"),
                                      (losses.CategoricalCrossentropy, "saturated_softmax_cce")])
def test_saturated_softmax_loss_comes_from_the_logits_without_clipping(cls, case):
    loss = cls()
    assert loss.output_logits("softmax") is True
    z = _pre_activation("Wbig")
    y = np.array(MODEL_DATA["y_sparse"])
    if cls is losses.CategoricalCrossentropy:
        y = np.eye(3, dtype=np.float32)[y]
    y = loss.prepare_targets(y, (None, 3), "fit(y)")
    probs = np.empty_like(z)
    value, grad = loss.compute(z, y, True, probs_out=probs)
    # Keras: 32.23, far above what clipping at 1e-7 allows (-log 1e-7 = 16.1)
    assert value == pytest.approx(MODEL_KERAS[case][0], rel=1e-6) and value > 16.2
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(grad, (probs - np.eye(3)[MODEL_DATA["y_sparse"]]) / 6, atol=1e-7)


def test_sigmoid_outputs_give_binary_losses_their_logits():
    bce = losses.BinaryCrossentropy()
    assert bce.output_logits("sigmoid") and bce.output_logits("softmax")
    z1 = _pre_activation("W1", "b1")
    y1 = bce.prepare_targets(np.array(MODEL_DATA["y_bin1"]), (None, 1), "fit(y)")
    probs = np.empty_like(z1)
    value, _ = bce.compute(z1, y1, True, probs_out=probs)
    assert value == pytest.approx(MODEL_KERAS["saturated_sigmoid_bce"][0], rel=1e-6)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-z1.astype(np.float64))), rtol=1e-6)
    # a softmax output's pre-softmax values are the sigmoid logits (tf.keras' _keras_logits)
    y = bce.prepare_targets(np.array(MODEL_DATA["y_bin"]), (None, 3), "fit(y)")
    assert bce.compute(_pre_activation(), y, True)[0] == pytest.approx(
        MODEL_KERAS["softmax_bce"][0], rel=1e-6)
    with pytest.warns(UserWarning, match="Sigmoid activation"):
        assert losses.BinaryCrossentropy(from_logits=True).output_logits("sigmoid")
    focal = losses.BinaryFocalCrossentropy()
    assert focal.output_logits("sigmoid") and not focal.output_logits("softmax")
    assert focal.compute(z1, y1, True)[0] == pytest.approx(MODEL_KERAS["sigmoid_focal"][0],
                                                           rel=1e-5)


def test_output_logits_only_for_the_crossentropies_after_softmax_or_sigmoid():
    assert losses.CategoricalCrossentropy(from_logits=True).output_logits("linear") is False
    for loss in (losses.MeanSquaredError(), losses.Hinge(), losses.KLDivergence(),
                 losses.CosineSimilarity()):
        assert loss.logit_activation is None
        assert not loss.output_logits("softmax") and not loss.output_logits("sigmoid")
    assert losses.CategoricalCrossentropy().logit_activation == "softmax"
    assert losses.SparseCategoricalCrossentropy().logit_activation == "softmax"
    assert losses.BinaryCrossentropy().logit_activation == "sigmoid"
    assert losses.BinaryFocalCrossentropy().logit_activation == "sigmoid"
    assert losses.CategoricalCrossentropy().fuses_softmax
    assert not losses.BinaryCrossentropy().fuses_softmax
    # a linear output with from_logits=True: the plain logits path, no warning
    loss = losses.CategoricalCrossentropy(from_logits=True)
    y = np.eye(3, dtype=np.float32)[MODEL_DATA["y_sparse"]]
    assert loss.compute(_pre_activation(), y, True)[0] == pytest.approx(
        MODEL_KERAS["linear_cce_from_logits"][0], rel=1e-6)


# ---- the C kernel of the other losses against float64 references and finite differences -----

EPS = 1e-7


def _ref_rows(kind, x, y, delta=1.0, alpha=0.25, gamma=2.0, balance=False):
    """Each row's loss in float64, from Keras' formulas."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)

    def focal(p, bce):
        pt = y * p + (1 - y) * (1 - p)
        w = y * alpha + (1 - y) * (1 - alpha) if balance else 1.0
        return w * (1 - pt) ** gamma * bce

    e = x - y
    if kind == "mse":
        v = e ** 2
    elif kind == "mae":
        v = np.abs(e)
    elif kind == "mape":
        v = 100 * np.abs(e) / np.maximum(np.abs(y), EPS)
    elif kind == "msle":
        v = (np.log(np.maximum(x, EPS) + 1) - np.log(np.maximum(y, EPS) + 1)) ** 2
    elif kind == "huber":
        v = np.where(np.abs(e) <= delta, 0.5 * e ** 2, delta * np.abs(e) - 0.5 * delta ** 2)
    elif kind == "logcosh":
        v = np.log(np.cosh(e))
    elif kind == "poisson":
        v = x - y * np.log(x + EPS)
    elif kind == "hinge":
        v = np.maximum(1 - y * x, 0)
    elif kind == "squared_hinge":
        v = np.maximum(1 - y * x, 0) ** 2
    elif kind in ("bce", "focal"):
        xc = np.clip(x, EPS, 1 - EPS)
        v = -(y * np.log(xc + EPS) + (1 - y) * np.log(1 - xc + EPS))
        v = focal(x, v) if kind == "focal" else v
    elif kind in ("bce_logits", "focal_logits"):
        v = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
        v = focal(1 / (1 + np.exp(-x)), v) if kind == "focal_logits" else v
    elif kind == "kld":
        yc, xc = np.clip(y, EPS, 1), np.clip(x, EPS, 1)
        return (yc * np.log(yc / xc)).sum(-1)
    elif kind == "cosine":
        nx = np.sqrt(np.maximum((x ** 2).sum(-1, keepdims=True), 1e-12))
        ny = np.sqrt(np.maximum((y ** 2).sum(-1, keepdims=True), 1e-12))
        return -((x / nx) * (y / ny)).sum(-1)
    elif kind == "categorical_hinge":
        return np.maximum(((1 - y) * x).max(-1) - (y * x).sum(-1) + 1, 0)
    return v.mean(-1)


KIND_DATA = {   # (y_pred, y_true) generators, away from the kinks
    "mse": ("normal", "normal"), "mae": ("normal", "normal"), "mape": ("normal", "normal"),
    "msle": ("positive", "positive"), "huber": ("normal", "normal"),
    "logcosh": ("normal", "normal"), "poisson": ("positive", "positive"),
    "hinge": ("normal", "sign"), "squared_hinge": ("normal", "sign"),
    "bce": ("prob", "unit"), "bce_logits": ("normal", "unit"), "focal": ("prob", "unit"),
    "focal_logits": ("normal", "unit"), "kld": ("prob", "prob"), "cosine": ("normal", "normal"),
    "categorical_hinge": ("normal", "onehot"),
}


def _gen(r, what, shape):
    if what == "normal":
        return r.normal(0, 2, shape)
    if what == "positive":
        return r.uniform(0.05, 3, shape)
    if what == "sign":
        return np.where(r.random(shape) < 0.5, -1.0, 1.0)
    if what == "prob":
        return r.uniform(0.02, 0.98, shape)
    if what == "unit":
        return r.random(shape)
    return np.eye(shape[1])[r.integers(0, shape[1], shape[0])]


@pytest.mark.parametrize("kind", sorted(KIND_DATA))
@pytest.mark.parametrize("shape", [(1, 1), (5, 4), (33, 17)], ids=str)
def test_loss_rows_kernel_against_float64_reference_and_finite_differences(kind, shape):
    r = np.random.default_rng(hash((kind, shape)) % 2 ** 32)
    x = _gen(r, KIND_DATA[kind][0], shape).astype(np.float32)
    y = _gen(r, KIND_DATA[kind][1], shape).astype(np.float32)
    params = {"delta": 0.7, "alpha": 0.3, "gamma": 1.5, "balance": True}
    kw = {k: params[k] for k in ("alpha", "gamma", "balance")} if kind.startswith("focal") else \
        ({"delta": 0.7} if kind == "huber" else {})
    w = r.uniform(0.1, 2.0, shape[0]).astype(np.float32)
    rows = np.empty(shape[0], np.float64)
    g = np.full(shape, np.nan, np.float32)
    total = _C.loss_rows(kind, x, y, g, row_weights=w, row_losses=rows, **kw)
    ref = _ref_rows(kind, x, y, **kw)
    np.testing.assert_allclose(rows, ref, rtol=2e-5, atol=2e-5, err_msg=kind)
    assert total == pytest.approx(float((w * ref).sum()), rel=2e-5, abs=2e-5)
    # the gradient of sum_r w_r row_r: central differences of the float64 reference
    h = 1e-6 * np.maximum(1.0, np.abs(x.astype(np.float64)))
    fd = np.empty(shape)
    x64 = x.astype(np.float64)
    for idx in np.ndindex(*shape):
        xp, xm = x64.copy(), x64.copy()
        xp[idx] += h[idx]
        xm[idx] -= h[idx]
        fd[idx] = (w * (_ref_rows(kind, xp, y, **kw) - _ref_rows(kind, xm, y, **kw))).sum() / \
            (2 * h[idx])
    np.testing.assert_allclose(g, fd, rtol=2e-3, atol=2e-5 * max(1.0, np.abs(fd).max()),
                               err_msg=kind)
    # no weights: the mean over the rows
    assert _C.loss_rows(kind, x, y, None, **kw) == pytest.approx(ref.mean(), rel=2e-5, abs=2e-5)


def test_loss_rows_writes_sigmoid_probs_for_the_logit_kinds():
    x = np.array([[-100.0, -2.0, 0.0, 3.0, 90.0]], np.float32)
    y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0]], np.float32)
    probs = np.full_like(x, np.nan)
    loss = _C.loss_rows("bce_logits", x, y, None, probs=probs)
    # (subnormal results flush to zero, as in every kernel)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6,
                               atol=1.2e-38)
    # stable for huge logits: max(x,0) - xy + log1p(exp(-|x|)), here (0 + 2.127 + 0.693 + 3.049
    # + 0) / 5
    assert np.isfinite(loss) and loss == pytest.approx(
        float(_ref_rows("bce_logits", x, y)[0]), rel=1e-6)
    with pytest.raises(ValueError, match="probs"):
        _C.loss_rows("mse", x, y, None, probs=probs)


@pytest.mark.parametrize("kind", ["mse", "bce_logits", "cosine", "kld"])
def test_loss_rows_is_bit_identical_for_any_thread_count(kind):
    r = np.random.default_rng(3)
    x = r.uniform(0.05, 0.95, (6000, 10)).astype(np.float32)   # several tasks of rows
    y = r.random((6000, 10)).astype(np.float32)
    w = r.random(6000).astype(np.float32)
    before = _C.num_threads()
    try:
        out = []
        for n in (1, 2, 3):
            _C.set_num_threads(n)
            g, rows = np.empty_like(x), np.empty(6000)
            out.append((_C.loss_rows(kind, x, y, g, row_weights=w, row_losses=rows), g, rows))
        for total, g, rows in out[1:]:
            assert total == out[0][0]
            assert np.array_equal(g, out[0][1]) and np.array_equal(rows, out[0][2])
    finally:
        _C.set_num_threads(before)


def test_crossentropy_kernels_take_row_weights_and_give_row_losses():
    r = np.random.default_rng(5)
    z = r.normal(0, 3, (7, 5)).astype(np.float32)
    lab = r.integers(0, 5, 7).astype(np.int64)
    t = np.eye(5, dtype=np.float32)[lab]
    w = r.uniform(0, 2, 7).astype(np.float32)
    ls = z - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) - z.max(1, keepdims=True)
    want_rows = -ls[np.arange(7), lab]
    for fn, truth in ((_C.softmax_xent_sparse, lab), (_C.softmax_xent, t)):
        rows, p, g = np.empty(7), np.empty_like(z), np.empty_like(z)
        total = fn(z, truth, p, g, row_weights=w, row_losses=rows)
        np.testing.assert_allclose(rows, want_rows, rtol=1e-5)
        assert total == pytest.approx(float((w * want_rows).sum()), rel=1e-5)
        np.testing.assert_allclose(g, (p - t) * w[:, None], rtol=1e-6, atol=1e-8)
    q = np.exp(ls).astype(np.float32) * 3.0          # unnormalised probabilities
    for fn, truth in ((_C.xent_sparse, lab), (_C.xent, t)):
        rows = np.empty(7)
        total = fn(q, truth, None, row_weights=w, row_losses=rows)
        np.testing.assert_allclose(rows, np.minimum(want_rows, -np.log(1e-7)), rtol=1e-4)
        assert total == pytest.approx(float((w * rows).sum()), rel=1e-6)


@pytest.mark.parametrize("call,words", [
    (lambda: _C.loss_rows("nope", np.ones((2, 2), np.float32), np.ones((2, 2), np.float32)),
     ["unknown loss kind", "nope"]),
    (lambda: _C.loss_rows("mse", np.ones((2, 2), np.float32), np.ones((2, 3), np.float32)),
     ["same shape"]),
    (lambda: _C.loss_rows("mse", np.ones((2, 2), np.float32), np.ones((2, 2), np.float64)),
     ["'y_true'", "dtype"]),
    (lambda: _C.loss_rows("mse", np.ones((2, 2), np.float32), np.ones((2, 2), np.float32),
                          row_weights=np.ones(3, np.float32)), ["row_weights"]),
    (lambda: _C.loss_rows("mse", np.ones((2, 2), np.float32), np.ones((2, 2), np.float32),
                          row_losses=np.ones(2, np.float32)), ["row_losses", "dtype"]),
    (lambda: _C.loss_rows("huber", np.ones((2, 2), np.float32), np.ones((2, 2), np.float32),
                          delta=-1.0), ["delta"]),
    (lambda: _C.softmax_xent(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32),
                             np.ones((2, 2), np.float32), None,
                             row_losses=np.ones(3)), ["row_losses"]),
])
def test_kernel_arguments_are_checked(call, words):
    with pytest.raises((ValueError, TypeError)) as err:
        call()
    for w in words:
        assert w in str(err.value)


def test_kernel_outputs_must_not_alias_inputs():
    x = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match="share memory"):
        _C.loss_rows("mse", x, np.ones((2, 2), np.float32), x)


# ---- the Python API --------------------------------------------------------------------------

@pytest.mark.parametrize("ident,cls", [
    ("mse", losses.MeanSquaredError), ("MSE", losses.MeanSquaredError),
    ("mean_squared_error", losses.MeanSquaredError), ("mae", losses.MeanAbsoluteError),
    ("mape", losses.MeanAbsolutePercentageError), ("msle", losses.MeanSquaredLogarithmicError),
    ("kld", losses.KLDivergence), ("kullback_leibler_divergence", losses.KLDivergence),
    ("logcosh", losses.LogCosh), ("log_cosh", losses.LogCosh), ("huber", losses.Huber),
    ("binary_crossentropy", losses.BinaryCrossentropy),
    ("BinaryCrossentropy", losses.BinaryCrossentropy),
    ("binary_focal_crossentropy", losses.BinaryFocalCrossentropy),
    ("categorical_crossentropy", losses.CategoricalCrossentropy),
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ("poisson", losses.Poisson), ("hinge", losses.Hinge), ("squared_hinge", losses.SquaredHinge),
    ("categorical_hinge", losses.CategoricalHinge),
    ("cosine_similarity", losses.CosineSimilarity),
    (losses.Huber, losses.Huber), (losses.mean_absolute_error, losses.MeanAbsoluteError),
    (losses.binary_crossentropy, losses.BinaryCrossentropy),
])
def test_get_resolves_names_aliases_classes_and_functions(ident, cls):
    loss = losses.get(ident)
    assert type(loss) is cls
    inst = cls()
    assert losses.get(inst) is inst


def test_get_rejects_unknown_names_with_the_list():
    with pytest.raises(ValueError, match="Could not interpret loss identifier: 'msee'.*mse"):
        losses.get("msee")
    with pytest.raises(ValueError):
        losses.get(3)


def test_plain_functions_are_wrapped_and_evaluate_but_leave_gradients_to_the_plan():
    def my_loss(y_true, y_pred):
        return np.mean((y_true - y_pred) ** 2, axis=-1)
    loss = losses.get(my_loss)
    assert isinstance(loss, losses.LossFunctionWrapper) and loss.name == "my_loss"
    yt, yp = np.array(DATA["reg_true"]), np.array(DATA["reg_pred"])
    assert loss(yt, yp) == pytest.approx(KERAS["mse"]["mean"], rel=1e-6)
    assert loss(yt, yp, sample_weight=np.array(DATA["sw"])) == pytest.approx(
        KERAS["mse"]["mean_sw"], rel=1e-6)
    # the gradient: the function traced on symbolic tensors (NumPy-style code runs ops)
    value, grad = loss.compute(yp, yt, False)
    assert value == pytest.approx(KERAS["mse"]["mean"], rel=1e-6)
    np.testing.assert_allclose(grad, 2 * (yp - yt) / yp.size, rtol=1e-5)
    assert loss.compute(yp, yt, False, grad=False)[0] == pytest.approx(KERAS["mse"]["mean"],
                                                                       rel=1e-6)


@pytest.mark.parametrize("loss", [
    losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1, reduction="sum"),
    losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.4, gamma=1.0),
    losses.CategoricalCrossentropy(label_smoothing=0.2, axis=1, name="cce"),
    losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=3),
    losses.Huber(delta=2.5), losses.CosineSimilarity(axis=0), losses.MeanSquaredError(),
    losses.Hinge(reduction="none"),
])
def test_config_round_trips(loss):
    cfg = loss.get_config()
    back = type(loss).from_config(cfg)
    assert back.get_config() == cfg
    again = losses.deserialize(losses.serialize(loss))
    assert type(again) is type(loss) and again.get_config() == cfg


def test_keras_config_keys():
    assert losses.BinaryCrossentropy().get_config() == {
        "name": "binary_crossentropy", "reduction": "sum_over_batch_size", "from_logits": False,
        "label_smoothing": 0.0, "axis": -1}
    assert losses.MeanSquaredError().get_config() == {"name": "mean_squared_error",
                                                      "reduction": "sum_over_batch_size"}
    assert losses.Huber().get_config()["delta"] == 1.0


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="reduction"):
        losses.MeanSquaredError(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.BinaryCrossentropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match="axis"):
        losses.CategoricalCrossentropy(axis=True)
    with pytest.raises(ValueError, match="delta"):
        losses.Huber(delta=-1)
    with pytest.raises(ValueError, match="sample_weight of shape \\(3,\\)"):
        losses.MeanSquaredError()(np.ones((4, 2)), np.ones((4, 2)), sample_weight=np.ones(3))


def test_numpy_scalars_are_accepted_as_numbers():
    loss = losses.Huber(delta=np.float32(0.4))
    assert loss(np.array(DATA["reg_true"]), np.array(DATA["reg_pred"]),
                sample_weight=np.float64(2.0)) == pytest.approx(
        2 * KERAS["huber_delta"]["mean"], rel=1e-6)
    assert losses.BinaryCrossentropy(label_smoothing=np.float64(0.2))(
        np.array(DATA["bin_true"]), np.array(DATA["probs"])) == pytest.approx(
        KERAS["bce_ls"]["mean"], rel=1e-6)


def test_sample_weight_shapes_as_keras_broadcasts_them():
    yt, yp = np.array(DATA["reg_true"]), np.array(DATA["reg_pred"])
    sw = np.array(DATA["sw"], np.float32)
    loss = losses.MeanSquaredError()
    want = KERAS["mse"]["mean_sw"]
    for s in (sw, sw.reshape(4, 1), list(sw)):
        assert loss(yt, yp, sample_weight=s) == pytest.approx(want, rel=1e-6)
    assert loss(yt, yp, sample_weight=2) == pytest.approx(2 * KERAS["mse"]["mean"], rel=1e-6)


def test_axis_other_than_last():
    r = np.random.default_rng(9)
    z = r.normal(size=(3, 4, 2)).astype(np.float32)
    t = np.eye(4, dtype=np.float32)[r.integers(0, 4, (3, 2))].transpose(0, 2, 1)
    moved = losses.CategoricalCrossentropy(from_logits=True, axis=1)
    last = losses.CategoricalCrossentropy(from_logits=True)
    zt, tt = np.ascontiguousarray(z.transpose(0, 2, 1)), np.ascontiguousarray(t.transpose(0, 2, 1))
    v1, g1 = moved.compute(z, t, True)
    v2, g2 = last.compute(zt, tt, True)
    assert v1 == pytest.approx(v2, rel=1e-6)
    np.testing.assert_allclose(g1, g2.transpose(0, 2, 1), rtol=1e-6)
    np.testing.assert_allclose(losses.categorical_crossentropy(t, z, from_logits=True, axis=1),
                               losses.categorical_crossentropy(tt, zt, from_logits=True),
                               rtol=1e-6)


def test_segmentation_outputs_take_one_label_per_pixel():
    r = np.random.default_rng(4)
    z = r.normal(size=(2, 3, 3, 4)).astype(np.float32)
    lab = r.integers(0, 4, (2, 3, 3))
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    y = loss.prepare_targets(lab[..., None], (None, 3, 3, 4), "fit(y)")
    assert y.shape == (2, 3, 3)
    value, grad = loss.compute(z, y, True)
    flat = losses.SparseCategoricalCrossentropy(from_logits=True)
    v2, g2 = flat.compute(z.reshape(18, 4), lab.reshape(18), True)
    assert value == pytest.approx(v2, rel=1e-6)
    np.testing.assert_allclose(grad.reshape(18, 4), g2, rtol=1e-6)
    per = losses.sparse_categorical_crossentropy(lab, z, from_logits=True)
    assert per.shape == (2, 3, 3)
    # a sample weight per image weighs each of its pixels
    sw = np.array([1.0, 3.0], np.float32)
    wv = loss.compute(z, y, True, grad=False, sample_weight=sw)[0]
    assert wv == pytest.approx(float((per * sw[:, None, None]).mean()), rel=1e-5)


def test_ignore_class_counts_for_nothing_and_the_mean_is_over_the_others():
    z = np.array(DATA["logits"], np.float32)
    lab = np.array([0, 2, -1, 2])
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    y = loss.prepare_targets(lab, (None, 3), "fit(y)")
    value, grad = loss.compute(z, y, True)
    per = np.array(KERAS["scce_logits"]["none"])
    assert value == pytest.approx(per[[0, 1, 3]].mean(), rel=1e-6)
    assert np.all(grad[2] == 0)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(
        lab, z, from_logits=True, ignore_class=-1), [per[0], per[1], 0.0, per[3]], rtol=1e-6)


def test_sparse_targets_checked_once_with_helpful_messages():
    loss = losses.SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match="out of range"):
        loss.prepare_targets(np.array([0, 3]), (None, 3), "fit(y)")
    with pytest.raises(ValueError, match="one-hot"):
        loss.prepare_targets(np.eye(3)[[0, 1]], (None, 3), "fit(y)")
    assert loss.prepare_targets(np.array([[1], [2]], np.uint8), (None, 3), "fit(y)").tolist() \
        == [1, 2]
    with pytest.raises(ValueError, match="targets of shape"):
        losses.CategoricalCrossentropy().prepare_targets(np.array([0, 1]), (None, 3), "fit(y)")


def test_probs_out_gets_the_activation_of_the_logits():
    z = np.array(DATA["logits"], np.float32)
    for loss, y, want in [
            (losses.CategoricalCrossentropy(), np.array(DATA["onehot"], np.float32),
             np.exp(z) / np.exp(z).sum(-1, keepdims=True)),
            (losses.SparseCategoricalCrossentropy(), np.array(DATA["labels"]),
             np.exp(z) / np.exp(z).sum(-1, keepdims=True)),
            (losses.BinaryCrossentropy(), np.array(DATA["bin_true"], np.float32),
             1 / (1 + np.exp(-z))),
            (losses.BinaryFocalCrossentropy(), np.array(DATA["bin_true"], np.float32),
             1 / (1 + np.exp(-z)))]:
        probs = np.full_like(z, np.nan)
        loss.compute(z, y, True, probs_out=probs)
        np.testing.assert_allclose(probs, want, rtol=1e-6, err_msg=loss.name)


def test_reduction_none_in_compute_is_the_sum():
    loss = losses.MeanAbsoluteError(reduction="none")
    yt, yp = np.array(DATA["reg_true"], np.float32), np.array(DATA["reg_pred"], np.float32)
    value, grad = loss.compute(yp, yt, False)
    assert value == pytest.approx(sum(KERAS["mae"]["none"]), rel=1e-6)
    np.testing.assert_allclose(grad, np.array(KERAS["mae"]["grad"]) * 4, rtol=1e-6)
    out = loss(yt, yp, sample_weight=np.array(DATA["sw"]))
    assert out.shape == (4,)
    np.testing.assert_allclose(out, np.array(KERAS["mae"]["none"]) * DATA["sw"], rtol=1e-6)


@pytest.mark.parametrize("fn", ["softmax_xent_sparse", "softmax_xent", "xent_sparse", "xent"])
def test_crossentropy_kernels_are_bit_identical_for_any_thread_count(fn):
    r = np.random.default_rng(8)
    n, c = 5000, 10                                  # several tasks of rows
    z = r.normal(0, 3, (n, c)).astype(np.float32)
    lab = r.integers(0, c, n).astype(np.int64)
    scores = z if fn.startswith("softmax") else np.exp(z).astype(np.float32)
    truth = lab if fn.endswith("sparse") else np.eye(c, dtype=np.float32)[lab]
    w = r.random(n).astype(np.float32)
    before = _C.num_threads()
    try:
        out = []
        for threads in (1, 2, 3):
            _C.set_num_threads(threads)
            g, rows = np.empty_like(z), np.empty(n)
            args = (scores, truth, np.empty_like(z), g) if fn.startswith("softmax") else \
                (scores, truth, g)
            out.append((getattr(_C, fn)(*args, row_weights=w, row_losses=rows), g, rows))
        for total, g, rows in out[1:]:
            assert total == out[0][0]
            assert np.array_equal(g, out[0][1]) and np.array_equal(rows, out[0][2])
    finally:
        _C.set_num_threads(before)


def test_loss_rows_checks_every_array():
    args = {"y_pred": np.ones((3, 2), np.float32), "y_true": np.ones((3, 2), np.float32),
            "grad": np.ones((3, 2), np.float32), "row_weights": np.ones(3, np.float32),
            "row_losses": np.ones(3, np.float64), "probs": np.ones((3, 2), np.float32)}
    assert_every_array_checked(lambda **kw: _C.loss_rows("bce_logits", **kw), "loss_rows",
                               args, ("grad", "row_losses", "probs"))


def test_a_vector_is_one_row_as_keras_reduces_the_last_axis():
    # tf.keras 2.21: keras.losses.mse([0, 1, 1, 0], [0.2, 0.7, 0.4, 0.1]) == 0.125 (a scalar)
    yt, yp = [0.0, 1.0, 1.0, 0.0], [0.2, 0.7, 0.4, 0.1]
    v = losses.mse(yt, yp)
    assert v.shape == () and float(v) == pytest.approx(0.125, rel=1e-6)
    assert float(losses.binary_crossentropy(yt, yp)) == pytest.approx(0.40036728978157043,
                                                                      rel=1e-6)
    none = losses.MeanSquaredError(reduction="none")(yt, yp)
    assert np.shape(none) == () and float(none) == pytest.approx(0.125, rel=1e-6)
    assert losses.BinaryCrossentropy()(yt, yp) == pytest.approx(0.40036728978157043, rel=1e-6)
